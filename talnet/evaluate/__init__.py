"""Detection mAP and proposal AR@AN, matching ActivityNet's reference evaluation."""
