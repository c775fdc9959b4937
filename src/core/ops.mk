# src/core/ops.mk (see src/core/Makefile.include)
