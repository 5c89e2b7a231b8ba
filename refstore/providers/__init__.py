"""Object-store providers behind one contract."""
