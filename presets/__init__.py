"""Set-up content, not code paths: trial presets (WalkBack first), the instrument library and the
demo data. Another trial is a new preset here, not an edit to the apps below."""
