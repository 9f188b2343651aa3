build/src/loop.o: src/loop.c src/loop.h src/common.h src/log.h
src/loop.h:
src/common.h:
src/log.h:
