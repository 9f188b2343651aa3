build/providers/mock.o: providers/mock.c providers/provider.h \
 providers/../src/config.h providers/../src/buf.h \
 providers/../src/errors.h providers/../src/call.h \
 providers/../src/errors.h providers/../src/common.h \
 providers/../src/loop.h
providers/provider.h:
providers/../src/config.h:
providers/../src/buf.h:
providers/../src/errors.h:
providers/../src/call.h:
providers/../src/errors.h:
providers/../src/common.h:
providers/../src/loop.h:
