"""Company pages: employees, departments, numbers and their routes."""
