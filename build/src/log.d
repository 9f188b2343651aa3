build/src/log.o: src/log.c src/log.h src/common.h
src/log.h:
src/common.h:
