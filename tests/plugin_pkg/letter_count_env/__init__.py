"""letter_count: "How many r's are in strawberry?", answered with a counting tool."""
