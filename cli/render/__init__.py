"""What the commands print for a person (tables and detail views, 80 columns); --json prints the API's JSON."""
