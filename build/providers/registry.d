build/providers/registry.o: providers/registry.c providers/provider.h \
 providers/../src/config.h providers/../src/buf.h \
 providers/../src/errors.h providers/../src/common.h
providers/provider.h:
providers/../src/config.h:
providers/../src/buf.h:
providers/../src/errors.h:
providers/../src/common.h:
