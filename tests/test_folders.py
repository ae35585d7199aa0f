"""Folder archives: restored name by name into their folder, never through a link or over an
input; aecodec never deletes a tree, and a name it could not restore is refused when compressing."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec

from .test_cli import FMNIST, run
from .test_fuzz import join, split


def folder_archive(tmp_path, images) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, im in enumerate(images[:3]):
        Image.fromarray(im).save(photos / f"img{i}.png")
    assert run("-r", "-q", "photos", cwd=tmp_path).returncode == 0
    return tmp_path / "photos.aec"


def tree(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) -> its bytes' digest."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_decompressing_a_folder_archive_with_force_keeps_every_unarchived_file(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    (tmp_path / "photos" / "thesis.tex").write_text("years of work")
    (tmp_path / "photos" / "sub").mkdir()
    (tmp_path / "photos" / "sub" / "notes.txt").write_text("more")
    r = run("-d", "-f", "-q", archive.name, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = tree(tmp_path / "photos")
    assert set(files) == {"img0.png", "img1.png", "img2.png", "thesis.tex", "sub/notes.txt"}
    assert (tmp_path / "photos" / "thesis.tex").read_text() == "years of work"


def test_decompressing_into_an_unrelated_folder_with_force_only_adds_the_archived_names(
    tmp_path, images
):
    archive = folder_archive(tmp_path, images)
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("keep me")
    assert run("-d", "-f", "-q", "-o", "home", archive.name, cwd=tmp_path).returncode == 0
    assert set(tree(home)) == {"thesis.tex", "img0.png", "img1.png", "img2.png"}


def test_without_force_an_existing_name_is_refused_and_nothing_is_written(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1.png").write_bytes(b"mine")
    r = run("-d", "-q", "-o", "out", archive.name, cwd=tmp_path)
    assert r.returncode == 1 and b"img1.png already exists (use -f to overwrite)" in r.stderr
    assert tree(out) == {
        "img1.png": hashlib.sha256(b"mine").hexdigest()
    }  # no staging folder left either


@pytest.mark.parametrize("target", [".", "..", "/"])
def test_restoring_into_dot_dotdot_or_root_is_refused(tmp_path, images, target):
    archive = folder_archive(tmp_path, images)
    (tmp_path / "photos").rename(tmp_path / "kept")
    before = tree(tmp_path)
    r = run("-d", "-f", "-q", "-o", target, archive.name, cwd=tmp_path)
    assert r.returncode == 2 and b"refusing to restore" in r.stderr
    assert tree(tmp_path) == before


def test_restoring_into_a_folder_that_holds_the_archive_is_refused(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    archive.rename(nested / "photos.aec")
    r = run("-d", "-f", "-q", "-o", "a", "a/b/photos.aec", cwd=tmp_path)
    assert r.returncode == 2 and b"it holds the archive" in r.stderr
    assert (nested / "photos.aec").exists()


def test_an_archive_named_dotdot_aec_does_not_map_to_a_dot_folder(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    archive.rename(tmp_path / "..aec")
    before = tree(tmp_path)
    r = run("-d", "-f", "-q", "..aec", cwd=tmp_path)
    assert r.returncode == 2 and tree(tmp_path) == before


@pytest.mark.parametrize(
    "name", ["../evil.png", "/etc/evil.png", "a/../../evil.png", "", "a\x1b[2J.png"]
)
def test_a_folder_archive_naming_a_file_outside_its_folder_is_refused(tmp_path, images, name):
    header, chunks = split(codec.compress(images[:2], quality=4))
    header[4] = {"kind": "folder", "name": "x", "count": 2, "files": ["ok.png", name]}
    (tmp_path / "x.aec").write_bytes(join(header, chunks))
    r = run("-d", "-q", "x.aec", cwd=tmp_path)
    assert r.returncode == 1 and b"header meta files" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.aec"]


def test_recursive_rm_removes_only_the_archived_images(tmp_path, images):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(images[i]).save(photos / f"img{i}.png")
    (photos / "readme.txt").write_text("not an image")
    (photos / "sub" / "deep.png").write_bytes((photos / "img0.png").read_bytes())
    r = run("-r", "--rm", "-o", "photos/photos.aec", "photos", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"skipped 1 file(s) that are not images: readme.txt" in r.stderr
    # folders stay, as with gzip
    assert set(tree(photos)) == {"readme.txt", "photos.aec"} and (photos / "sub").is_dir()
    assert codec.decompress((photos / "photos.aec").read_bytes()).shape == (4, 28, 28)


def test_folder_names_a_restore_would_refuse_are_refused_at_compression_before_rm(tmp_path, images):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(images[0]).save(photos / "ok.png")
    Image.fromarray(images[1]).save(photos / "bad\x1b[2J.png")
    r = run("-r", "--rm", "photos", cwd=tmp_path)
    assert r.returncode == 1 and b"control characters" in r.stderr and b"\x1b" not in r.stderr
    assert len(list(photos.iterdir())) == 2 and not (tmp_path / "photos.aec").exists()


def test_names_that_differ_only_in_case_round_trip(tmp_path, images):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(images[0]).save(photos / "A.png")
    Image.fromarray(images[1]).save(photos / "a.png")
    assert run("-r", "--rm", "-q", "photos", cwd=tmp_path).returncode == 0
    r = run("-d", "-q", "photos.aec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in photos.iterdir()) == ["A.png", "a.png"]


def test_folder_restore_never_writes_through_a_symbolic_link(tmp_path, images):
    header, chunks = split(codec.compress(images[:2], quality=4))
    header[4] = {"kind": "folder", "name": "x", "count": 2, "files": ["sub/evil.png", "ok.png"]}
    (tmp_path / "x.aec").write_bytes(join(header, chunks))
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "evil.png").write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to("../victim")
    for force in ([], ["-f"]):
        r = run("-d", "-q", *force, "-o", "out", "x.aec", cwd=tmp_path)
        assert r.returncode == 1 and b"not a plain folder" in r.stderr
        assert (tmp_path / "victim" / "evil.png").read_text() == "precious"
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sub"]


def test_a_folder_restore_never_replaces_its_own_input(tmp_path, images):
    header, chunks = split(codec.compress(images[:1], quality=4))
    header[4] = {"kind": "folder", "name": "x", "count": 1, "files": ["pic.png"]}
    (tmp_path / "arc").mkdir()
    (tmp_path / "arc" / "pic.png").write_bytes(join(header, chunks))
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "arc" / "pic.png", tmp_path / "out" / "pic.png")
    r = run("-d", "-f", "--rm", "-q", "-o", "out", "arc/pic.png", cwd=tmp_path)
    # refused as a single file's output is: bad usage
    assert r.returncode == 2 and b"output out/pic.png is the input arc/pic.png" in r.stderr
    assert (tmp_path / "arc" / "pic.png").read_bytes()[:3] == b"AEC"


def test_a_failed_folder_restore_leaves_no_folder_it_created(tmp_path, images):
    blob = bytearray(folder_archive(tmp_path, images).read_bytes())
    blob[-10] ^= 1  # the last chunk's data: damage found after the folder was made
    (tmp_path / "photos").rename(tmp_path / "original")
    (tmp_path / "photos.aec").write_bytes(bytes(blob))
    r = run("-d", "-q", "photos.aec", cwd=tmp_path)
    assert r.returncode == 1 and not (tmp_path / "photos").exists()


def test_a_name_that_cannot_be_placed_stops_the_restore_before_any_file_is_placed(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    out = tmp_path / "out"
    (out / "img1.png").mkdir(parents=True)  # a folder where a file is to go
    (out / "img0.png").write_bytes(b"mine")
    r = run("-d", "-f", "-q", "-o", "out", archive.name, cwd=tmp_path)
    assert r.returncode == 1 and b"img1.png is a folder" in r.stderr
    assert (out / "img0.png").read_bytes() == b"mine" and not (out / "img2.png").exists()


def test_a_folder_of_mixed_sizes_and_colours_round_trips_with_its_tree(tmp_path, mosaic):
    grey, rgb = mosaic
    photos = tmp_path / "photos"
    (photos / "day" / "two").mkdir(parents=True)
    Image.fromarray(grey[:100, :77]).save(photos / "a.png")
    Image.fromarray(rgb[:64, :90]).save(photos / "day" / "b.png")
    Image.fromarray(grey[3:50, 5:60]).save(photos / "day" / "two" / "c.tif")
    (photos / "notes.txt").write_text("not an image")
    r = run("-r", "--quality", "9", "--model", FMNIST, "photos", cwd=tmp_path)
    assert r.returncode == 0 and b"skipped 1 file(s) that are not images: notes.txt" in r.stderr
    photos.rename(tmp_path / "original")
    assert run("-d", "-q", "photos.aec", cwd=tmp_path).returncode == 0
    for name in ("a.png", "day/b.png", "day/two/c.tif"):
        before, after = (
            np.asarray(Image.open(tmp_path / "original" / name)),
            np.asarray(Image.open(photos / name)),
        )
        assert after.shape == before.shape and np.abs(after.astype(int) - before).max() <= 7
    listing = codec.decompress((tmp_path / "photos.aec").read_bytes())
    assert [a.shape for a in listing] == [(100, 77), (64, 90, 3), (47, 55)]


def test_errors_inside_a_folder_name_the_file(tmp_path, test_images):
    (tmp_path / "f").mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "f" / "a.png")
    frames = [Image.fromarray(test_images[i]) for i in range(2)]
    frames[0].save(tmp_path / "f" / "b.gif", save_all=True, append_images=frames[1:])
    r = run("-r", "f", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.decode().strip() == (
        "aecodec: error: f: b.gif: GIF image has 2 frames; aecodec stores one image per file "
        "(extract the frames first)"
    )


def test_a_truncated_first_image_of_a_folder_is_named_and_nothing_is_written(tmp_path, test_images):
    (tmp_path / "f").mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "f" / "b.png")
    whole = (tmp_path / "f" / "b.png").read_bytes()
    (tmp_path / "f" / "a.png").write_bytes(whole[: len(whole) // 2])  # a sound header, cut pixels
    r = run("-r", "--rm", "f", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.decode().startswith("aecodec: error: f: a.png: not a readable image")
    assert not (tmp_path / "f.aec").exists() and (tmp_path / "f" / "b.png").read_bytes() == whole


def test_the_api_refuses_to_restore_a_folder_archive_into_its_own_folder(
    tmp_path, test_images, monkeypatch
):
    (tmp_path / "f").mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "f" / "a.png")
    assert run("-r", "-q", "f", cwd=tmp_path).returncode == 0
    monkeypatch.chdir(tmp_path)
    with pytest.raises(codec.InputError, match="refusing to restore"):
        codec.decompress_file("f.aec", ".")


def test_a_name_that_is_not_utf8_is_refused_in_a_folder_and_replaced_in_meta(tmp_path, test_images):
    folder = tmp_path / "u"
    folder.mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "x.png")
    bad = os.fsdecode(b"bad\xff.png")
    (tmp_path / "x.png").rename(folder / bad)
    r = run("-r", "u", cwd=tmp_path)
    assert r.returncode == 1 and b"not valid UTF-8" in r.stderr
    assert run("-q", str(folder / bad), cwd=tmp_path).returncode == 0


def test_archiving_dot_needs_a_name(tmp_path, test_images):
    Image.fromarray(test_images[0]).save(tmp_path / "a.png")
    r = run("-r", ".", cwd=tmp_path)
    assert r.returncode == 2 and b"name the archive" in r.stderr
    assert run("-r", "-q", "-o", "../all.aec", ".", cwd=tmp_path).returncode == 0
