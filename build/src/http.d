build/src/http.o: src/http.c src/http.h src/common.h src/config.h \
 src/dispatch.h src/log.h src/loop.h src/req.h src/buf.h src/errors.h
src/http.h:
src/common.h:
src/config.h:
src/dispatch.h:
src/log.h:
src/loop.h:
src/req.h:
src/buf.h:
src/errors.h:
