"""Built-in methods, one module each. Every module registers its classes in `bench.method.METHODS`
with ``@METHODS.register()``; the registry imports all modules of this package on first use."""
