//! `include/sdt.h` and the D provider parser / `dtrace -h/-G` generator (not written yet).
