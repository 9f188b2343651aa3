build/src/dispatch.o: src/dispatch.c src/dispatch.h src/chat.h \
 src/errors.h src/embeddings.h src/common.h src/models.h src/req.h \
 src/buf.h
src/dispatch.h:
src/chat.h:
src/errors.h:
src/embeddings.h:
src/common.h:
src/models.h:
src/req.h:
src/buf.h:
