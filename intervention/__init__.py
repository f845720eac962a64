"""The intervention: physiotherapists' time, education sessions, prescriptions and the walking diary."""
