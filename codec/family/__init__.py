"""The classic autoencoder family (dense and convolutional maps, denoising, sparse, contractive,
variational, anomaly scores) on the codec's training engine."""
