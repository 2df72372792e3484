"""The store-camera pipeline: source -> face detection -> crop -> batched classification ->
tracking and smoothing -> the mood log (SQLite) that ``fer-edge report`` turns into CRM numbers.

Nothing here imports cv2 or a backend at package import time; each module imports what it uses.
"""
