"""News in many languages (issue 13): items with a version per language, language channels."""
