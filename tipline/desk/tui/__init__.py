"""The desk's full-screen interface (Textual): an inbox grouped by source, keyboard first."""
