"""Pure telemetry logic: window arithmetic, watermarks and the safe commit offset. No I/O."""
