"""permakey-tf: unsupervised object keypoints from local spatial predictability (Keras 3)."""
