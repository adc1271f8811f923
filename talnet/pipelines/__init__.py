"""Orchestration above train, detect, evaluate and visualize: the demo, the ablation, and
"evaluate a trained detector on a subset", each written once."""
