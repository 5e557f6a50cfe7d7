module nffi.example/goecho

go 1.19
