"""Raw data to a trainable data folder: readers, filtering, splits, images, the prepare pipeline."""
