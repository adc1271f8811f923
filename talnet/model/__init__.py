"""TAL-Net: anchors, proposal towers, SoI pooling, classifier, fusion, losses, matching."""
