"""Capsules on the desktop: .tflite import, lowering, quantization, the arena plan,
residency, the capsule file, signing and deltas."""
