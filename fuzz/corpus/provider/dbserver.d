/* ----------
 * dbserver.d
 *
 *	Static probes of a (fictional) database server, in the style of a large
 *	C server's provider file: type aliases defined with the preprocessor
 *	(run `dtrace -C`), one provider, many probes, `__` in every name.
 *	Written for stap-sdt's tests.
 * ----------
 */

/*
 * Typedefs of the server are not visible here; spell them with macros.
 */
#define TxnId unsigned int
#define RelId unsigned int
#define PageNo unsigned int
#define ForkKind int
#define LockLevel int
#define LatchMode int
#define bool unsigned char
#define Size unsigned long
#define Cost double

provider dbserver
{
	probe txn__begin(TxnId);
	probe txn__commit(TxnId);
	probe txn__abort(TxnId);

	probe latch__acquire(const char *, LatchMode);
	probe latch__release(const char *);
	probe latch__wait__begin(const char *, LatchMode);
	probe latch__wait__end(const char *, LatchMode);
	probe latch__try__fail(const char *, LatchMode);

	probe lock__wait__begin(unsigned int, unsigned int, unsigned int, unsigned int, unsigned int, LockLevel);
	probe lock__wait__end(unsigned int, unsigned int, unsigned int, unsigned int, unsigned int, LockLevel);
	probe deadlock__detected(unsigned int, unsigned int, unsigned int, unsigned int, unsigned int, LockLevel);

	probe query__parse__begin(const char *);
	probe query__parse__end(const char *);
	probe query__rewrite__begin(const char *);
	probe query__rewrite__end(const char *);
	probe query__plan__begin();
	probe query__plan__end();
	probe query__exec__begin();
	probe query__exec__end();
	probe query__begin(const char *);
	probe query__end(const char *);
	probe statement__status(const char *);

	probe sort__begin(int, bool, int, int, bool, int);
	probe sort__end(int, long);

	probe buffer__read__begin(ForkKind, PageNo, RelId, RelId, RelId, int);
	probe buffer__read__end(ForkKind, PageNo, RelId, RelId, RelId, int, bool);
	probe buffer__flush__begin(ForkKind, PageNo, RelId, RelId, RelId);
	probe buffer__flush__end(ForkKind, PageNo, RelId, RelId, RelId);
	probe buffer__extend__begin(ForkKind, RelId, RelId, RelId, int, unsigned int);
	probe buffer__extend__end(ForkKind, RelId, RelId, RelId, int, unsigned int, PageNo);
	probe buffer__checkpoint__begin(int);
	probe buffer__checkpoint__sync__begin();
	probe buffer__checkpoint__done();
	probe buffer__sync__begin(int, int);
	probe buffer__sync__written(int);
	probe buffer__sync__done(int, int, int);

	probe checkpoint__begin(int);
	probe checkpoint__end(int, int, int, int, int);
	probe clog__checkpoint__begin(bool);
	probe clog__checkpoint__end(bool);
	probe subtrans__checkpoint__begin(bool);
	probe subtrans__checkpoint__end(bool);
	probe multixact__checkpoint__begin(bool);
	probe multixact__checkpoint__end(bool);
	probe twophase__checkpoint__begin();
	probe twophase__checkpoint__end();

	probe smgr__read__begin(ForkKind, PageNo, RelId, RelId, RelId, int);
	probe smgr__read__end(ForkKind, PageNo, RelId, RelId, RelId, int, int, int);
	probe smgr__write__begin(ForkKind, PageNo, RelId, RelId, RelId, int);
	probe smgr__write__end(ForkKind, PageNo, RelId, RelId, RelId, int, int, int);

	probe wal__insert(unsigned char, unsigned char);
	probe wal__switch();
	probe wal__buffer__write__dirty__begin();
	probe wal__buffer__write__dirty__end();

	probe net__send(Size);
	probe net__receive(Size);
	probe plan__cost(Cost, Cost, long long);

	probe worker__spawn(int, const char *);
	probe worker__exit(int, int);
	probe memory__context__create(const char *, Size);
	probe memory__context__reset(const char *);
	probe memory__context__delete(const char *);
	probe hash__grow(const char *, long, long);
	probe tuple__fetch(RelId, PageNo, unsigned short, void *);
	probe replication__lag(const char *, unsigned long long, unsigned long long, long long, int, int, int, int, int, int, int, int);
};
