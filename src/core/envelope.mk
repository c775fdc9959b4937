# src/core/envelope.mk (see src/core/Makefile.include)
