"""Formats: annotations, features, detections; reading, validating, writing atomically."""
