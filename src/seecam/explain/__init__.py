"""Explanations of both models: hooks, the CAM family, faithfulness metrics, SE excitation analysis."""
