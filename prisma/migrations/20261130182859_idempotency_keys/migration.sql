-- CreateTable
CREATE TABLE "idempotency_keys" (
    "scope" VARCHAR(100) NOT NULL,
    "key" VARCHAR(300) NOT NULL,
    "path" VARCHAR(200) NOT NULL,
    "fingerprint" CHAR(64) NOT NULL,
    "answer" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("scope","key")
);

-- CreateIndex
CREATE INDEX "idempotency_keys_expires_at_idx" ON "idempotency_keys"("expires_at");
