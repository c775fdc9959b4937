# src/core/comm.mk (see src/core/Makefile.include)
