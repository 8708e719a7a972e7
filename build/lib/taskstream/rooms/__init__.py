"""Chat rooms on the hub: history, live messages, presence and typing indicators."""
