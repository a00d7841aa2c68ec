"""Pure PDF library (inspect, render, stamp, sign incrementally, verify, convert).

No Flask and no database here: functions take and return bytes or paths.
"""
