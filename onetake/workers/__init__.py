"""What runs on a Dask worker: the ffmpeg runner, packaging, verification and delivery."""
