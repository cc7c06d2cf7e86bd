// Sweep: see DESIGN in README.md for this module's job.
