"""What people and machines read: the report, its formats, tables and consoles, the generated check pages."""
