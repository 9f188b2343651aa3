build/src/main.o: src/main.c src/common.h src/config.h src/http.h \
 src/log.h src/loop.h src/upstream.h
src/common.h:
src/config.h:
src/http.h:
src/log.h:
src/loop.h:
src/upstream.h:
