import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
} from 'typeorm';

/**
 * `timestamptz` on PostgreSQL; MySQL/MariaDB and SQLite have no such type and keep `datetime`
 * (the example reads `DATABASE_URL` before this file is loaded; an app knows its database).
 */
const TIMESTAMP = /^(mysql|mariadb|sqlite):/i.test(
  process.env.DATABASE_URL ?? '',
)
  ? 'datetime'
  : 'timestamptz';

/** The example app's user. The password is stored as an scrypt hash, never in plaintext. */
@Entity('example_user')
export class User {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'varchar', length: 150, unique: true })
  username: string;

  @Column({ name: 'password_hash', type: 'varchar', length: 255 })
  passwordHash: string;

  @Column({ name: 'is_active', type: 'boolean', default: true })
  isActive: boolean;

  @CreateDateColumn({ name: 'date_joined', type: TIMESTAMP })
  dateJoined: Date;
}
