// owns the precompiled header
