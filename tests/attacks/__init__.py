"""Attack suite: hostile shoppers, poisoned catalog descriptions and policy paragraphs against the real assistant."""
