"""Inference: features to scored, NMS-filtered detections in seconds."""
