"""Example models built from scratch (training data bundled with their packages), used by the
committed capsules in ``capsules/`` and the demo."""
