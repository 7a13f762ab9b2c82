"""The stages after intake: submit, sync, push-back, cancel, returns."""
