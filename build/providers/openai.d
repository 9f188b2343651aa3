build/providers/openai.o: providers/openai.c providers/openai.h \
 providers/provider.h providers/../src/config.h providers/../src/buf.h \
 providers/../src/errors.h providers/../src/common.h \
 providers/../src/sse.h providers/../src/buf.h
providers/openai.h:
providers/provider.h:
providers/../src/config.h:
providers/../src/buf.h:
providers/../src/errors.h:
providers/../src/common.h:
providers/../src/sse.h:
providers/../src/buf.h:
