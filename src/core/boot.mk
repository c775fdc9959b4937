# src/core/boot.mk: bootstrap methods (see src/core/bootstrap.c).
libnumpush_la_SOURCES += src/core/bootstrap.c
