"""Anonymous marking: who sees learners' names and who sees candidate labels, for every domain that names
learners (gradeflow/anonymity/service.py says how)."""
