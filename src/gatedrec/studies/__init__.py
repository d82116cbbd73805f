"""Studies of trained models: what the gate learned (gates)."""
