# src/core/boot.mk (see src/core/Makefile.include)
