build/src/chat.o: src/chat.c src/chat.h src/errors.h src/call.h \
 src/common.h src/config.h src/log.h src/req.h src/buf.h src/router.h \
 src/sse.h src/../providers/provider.h src/../providers/../src/config.h \
 src/../providers/../src/buf.h src/../providers/../src/errors.h
src/chat.h:
src/errors.h:
src/call.h:
src/common.h:
src/config.h:
src/log.h:
src/req.h:
src/buf.h:
src/router.h:
src/sse.h:
src/../providers/provider.h:
src/../providers/../src/config.h:
src/../providers/../src/buf.h:
src/../providers/../src/errors.h:
