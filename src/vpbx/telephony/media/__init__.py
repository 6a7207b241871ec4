"""Media for real calls: rtpengine (anchoring, recording, prompts), prompts, recordings."""
