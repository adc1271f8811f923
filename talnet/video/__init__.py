"""Raw video to features: decoding, optical flow, I3D and InceptionV3 extraction."""
