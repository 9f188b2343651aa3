build/src/call.o: src/call.c src/call.h src/errors.h src/buf.h \
 src/common.h src/log.h src/loop.h src/upstream.h \
 src/../providers/provider.h src/../providers/../src/config.h \
 src/../providers/../src/buf.h src/../providers/../src/errors.h
src/call.h:
src/errors.h:
src/buf.h:
src/common.h:
src/log.h:
src/loop.h:
src/upstream.h:
src/../providers/provider.h:
src/../providers/../src/config.h:
src/../providers/../src/buf.h:
src/../providers/../src/errors.h:
